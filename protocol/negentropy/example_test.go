package negentropy_test

import (
	"fmt"
	"log"

	"github.com/entente-net/entente/protocol/negentropy"
)

// Two sides reconcile in memory; over a network each message would be one
// frame. The initiator ends knowing what to send and what to fetch.
func Example() {
	var mine, theirs []negentropy.Item
	for i := range 1000 {
		it := negentropy.Item{Timestamp: uint64(1_700_000_000 + i), ID: negentropy.ID{byte(i), byte(i >> 8), 1}}
		if i != 10 { // only the initiator holds item 10
			theirs = append(theirs, it)
		}
		if i != 500 { // only the responder holds item 500
			mine = append(mine, it)
		}
	}
	a, err := negentropy.NewVector(mine)
	if err != nil {
		log.Fatal(err)
	}
	b, err := negentropy.NewVector(theirs)
	if err != nil {
		log.Fatal(err)
	}
	initiator, _ := negentropy.New(a, 0)
	responder, _ := negentropy.New(b, 0)

	msg, err := initiator.Initiate()
	if err != nil {
		log.Fatal(err)
	}
	for rounds := 1; ; rounds++ {
		reply, err := responder.Reconcile(msg) // on the responder's host
		if err != nil {
			log.Fatal(err)
		}
		next, have, need, done, err := initiator.ReconcileInitiator(reply)
		if err != nil {
			log.Fatal(err)
		}
		for _, id := range have {
			fmt.Printf("send %x\n", id[:3])
		}
		for _, id := range need {
			fmt.Printf("fetch %x\n", id[:3])
		}
		if done {
			fmt.Println("done after", rounds, "round trips")
			return
		}
		msg = next
	}
	// Output:
	// send 0a0001
	// fetch f40101
	// done after 2 round trips
}
