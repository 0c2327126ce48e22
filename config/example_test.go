package config_test

import (
	"fmt"

	"github.com/entente-net/entente/config"
)

func ExampleParseFederation() {
	f, err := config.ParseFederation([]byte(`
name = "eu-latam-pilot"

[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8"
bootstrap = ["/ip4/127.0.0.1/tcp/4101/p2p/12D3KooWLWTcnf3FDDPkCqaAuSm2p2sqFNBdBuqczXRFLJsXwBun"]

[[jurisdiction]]
code = "BR"
name = "Brazil"
authority = "12D3KooWSf9xAcwXRNcJgtctMcxKUQQw64sM3eQBpcqrV56c9aJW"
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(f.Name, f.Codes())
	fmt.Println("BR authority:", f.Authorities()["BR"])
	for _, info := range f.BootstrapAddrs() {
		fmt.Println("founding node of", f.FoundingNodes()[info.ID]+":", info)
	}
	// Output:
	// eu-latam-pilot [DE BR]
	// BR authority: 12D3KooWSf9xAcwXRNcJgtctMcxKUQQw64sM3eQBpcqrV56c9aJW
	// founding node of DE: {12D3KooWLWTcnf3FDDPkCqaAuSm2p2sqFNBdBuqczXRFLJsXwBun: [/ip4/127.0.0.1/tcp/4101]}
}

func ExampleParseFederation_error() {
	_, err := config.ParseFederation([]byte(`
name = "eu-latam-pilot"

[[jurisdiction]]
code = "DE"
name = "Germany"
authority = "12D3KooWJAm6ATRHdC8vSZtSvnf2hSYfaAQQQou1AmmLsnNRKqY8"

[[jurisdiction]]
code = "BR"
name = "Brazil"
authority = "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
`))
	fmt.Println(err)
	// Output:
	// jurisdiction[1].authority: peer ID QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N does not embed its public key (want an Ed25519 ID, 12D3KooW...): public key is not embedded in peer ID
}
