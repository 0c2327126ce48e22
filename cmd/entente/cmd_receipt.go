package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

func init() {
	register(&command{
		name: "receipt get",
		summary: "download the bundle of a decision from the node that issued its receipt\n\n" +
			"The bundle is a CAR file holding the receipt, the decision (RECEIPT:ITEM as 'entente verify'\n" +
			"prints it, or --item: its index in the receipt, 0 for a single verify), the records it read,\n" +
			"the node's signed checkpoint and the proofs: check it offline with 'entente receipt check'.",
		usage: "receipt get RECEIPT[:ITEM] --out FILE [--item N] [--api HOST:PORT] [--home DIR] [--token-file FILE]",
		run:   runReceiptGet,
	})
	register(&command{
		name: "receipt check",
		summary: "check a receipt bundle offline against the federation file and recompute its verdict\n\n" +
			"Every signature, inclusion proof, authorisation and the decision itself are recomputed from\n" +
			"the bundle and the federation file alone. Give the federation as the node recognises it:\n" +
			"--trust for a node configured with trust = [...], or --home DIR of the node. With --item,\n" +
			"the bundle must also be of that decision of its receipt.\n" +
			"Exit status: 0 when every step holds, 1 when one does not, 2 usage, 3 when every step holds\n" +
			"but the bundle withholds evidence from the caller it was made for.",
		usage: "receipt check BUNDLE (--federation FILE [--trust CODE,...] | --home DIR) [--item N]",
		run:   runReceiptCheck,
	})
}

func runReceiptGet(env *cliEnv, args []string) error {
	c := findCommand("receipt get")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	out := flags.String("out", "", "file to write the bundle to (- for stdout)")
	item := flags.Int("item", 0, "the decision's index in the receipt")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		return usagef("name the receipt's CID")
	case len(rest) > 1:
		return usagef("unexpected argument %q", rest[1])
	case *out == "":
		return usagef("--out is required (- for stdout)")
	case *item < 0:
		return usagef("--item %d: a decision's index is 0 or more", *item)
	}
	// RECEIPT:ITEM, as verify prints a decision and --parent takes it.
	ref, err := parseDecisionRef(rest[0])
	if err != nil {
		return usagef("%v", err)
	}
	if strings.Contains(rest[0], ":") {
		itemSet := false
		flags.Visit(func(f *flag.Flag) { itemSet = itemSet || f.Name == "item" })
		if itemSet && int64(*item) != ref.Item {
			return usagef("%s names decision %d, --item %d another", rest[0], ref.Item, *item)
		}
		*item = int(ref.Item)
	}
	id, err := protocol.ParseCID(ref.Receipt)
	if err != nil {
		return usagef("%q: %v", ref.Receipt, err)
	}
	cl, err := af.client(env, false)
	if err != nil {
		return err
	}
	_, data, err := cl.do(http.MethodGet, fmt.Sprintf("/v1/receipts/%s/bundle?item=%d", id, *item), "", api.MediaCAR, nil)
	if err != nil {
		return err
	}
	b, err := protocol.ReadBundle(data)
	if err != nil {
		return fmt.Errorf("the node's answer is not a receipt bundle: %w", err)
	}
	if !b.Root.Equals(id) {
		return fmt.Errorf("the node answered with the bundle of %s, not of %s", b.Root, id)
	}
	if len(b.Blocks) < 2 {
		return fmt.Errorf("the node's answer is not a receipt bundle: %d blocks", len(b.Blocks))
	}
	if m, err := protocol.DecodeBundleManifest(b.Blocks[1].Data); err != nil {
		return fmt.Errorf("the node's answer is not a receipt bundle: its manifest: %w", err)
	} else if m.Item != int64(*item) {
		return fmt.Errorf("the node answered with the bundle of decision %d of %s, not of decision %d", m.Item, id, *item)
	}
	say := fmt.Sprintf("the bundle of decision %d of receipt %s: %d blocks, %d bytes", *item, id, len(b.Blocks), len(data))
	if *out == "-" {
		if _, err := env.stdout.Write(data); err != nil {
			return err
		}
		fmt.Fprintln(env.stderr, say)
		return nil
	}
	if err := config.WriteFileAtomic(*out, data, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%s, written to %s\n", say, *out)
	return nil
}

func runReceiptCheck(env *cliEnv, args []string) error {
	c := findCommand("receipt check")
	flags := newFlags(env, c)
	fedFile := flags.String("federation", "", "the federation file")
	trust := flags.String("trust", "", "the jurisdictions the node recognises, comma-separated (its trust list; default all)")
	home := flags.String("home", "", "a node home: check against its federation file and trust list (default $ENTENTE_HOME)")
	item := flags.Int("item", -1, "the decision's index in the receipt the bundle must be of (default any)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		return usagef("name the bundle file (- for stdin)")
	case len(rest) > 1:
		return usagef("unexpected argument %q", rest[1])
	case *fedFile != "" && *home != "":
		return usagef("give --federation or --home, not both")
	case *trust != "" && *fedFile == "":
		return usagef("--trust restricts --federation; with --home the node's trust list applies")
	case *item < -1:
		return usagef("--item %d: a decision's index is 0 or more", *item)
	}
	fed, err := checkFederation(env, *fedFile, *trust, *home)
	if err != nil {
		return err
	}
	data, err := readBundleFile(rest[0])
	if err != nil {
		return err
	}
	rep := protocol.CheckBundleCAR(data, protocol.NewBundleTrust(fed.Name, fed.Authorities(), fed.FoundingNodes()))
	printBundleReport(env.stdout, rep, fed)
	if err := rep.Err(); err != nil {
		var be *protocol.BundleError
		if errors.As(err, &be) {
			switch be.Step.ID {
			case protocol.StepReceiptIssuer, protocol.StepCheckpoint, protocol.StepEvidenceAuthorized, protocol.StepDecision:
				return withHint(err, "check against the federation file of the node's federation, as the node recognises it (--trust, or --home of the node), "+
					"and as it was when the receipt was signed: a founding node's key since replaced is in the old file only (docs/operating.md, \"Replacing a node\")")
			}
		}
		return err
	}
	if m := rep.Manifest; *item >= 0 && m.Item != int64(*item) {
		return fmt.Errorf("the bundle is of decision %d of receipt %s, not of decision %d", m.Item, rep.Receipt.CID(), *item)
	}
	if !rep.Complete() {
		fmt.Fprintf(env.stderr, "entente: every step holds, but the bundle withholds evidence from the caller it was made for (%d incident notices): %s neither confirmed nor refuted\n",
			len(rep.Withheld), strings.Join(rep.WithheldChecks, ", "))
		return errWithheld
	}
	return nil
}

// errWithheld ends receipt check with exitWithheld: every step holds, but
// the bundle withholds evidence from the caller it was made for.
var errWithheld = errors.New("evidence withheld")

// exitWithheld is receipt check's status when every step holds but some
// evidence is withheld (DESIGN.md §6).
const exitWithheld = 3

// checkFederation is the federation to check against: --federation,
// restricted to --trust, or the federation of the node at --home as it
// recognises it.
func checkFederation(env *cliEnv, file, trust, home string) (*config.Federation, error) {
	if file == "" {
		dir := env.homeDir(home)
		if dir == "" {
			return nil, usagef("--federation is required (or --home DIR of the node)")
		}
		nc, err := config.Load(dir)
		if err != nil {
			return nil, err
		}
		return nc.LoadFederation()
	}
	fed, err := config.LoadFederation(file)
	if err != nil {
		return nil, err
	}
	if trust == "" {
		return fed, nil
	}
	var codes []string
	for _, code := range strings.Split(trust, ",") {
		if code = strings.TrimSpace(code); code != "" {
			codes = append(codes, code)
		}
	}
	restricted, err := fed.Restrict(codes)
	if err != nil {
		return nil, usagef("--trust: %v", err)
	}
	return restricted, nil
}

// readBundleFile reads a bundle, refusing one over the size limit.
func readBundleFile(path string) ([]byte, error) {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, protocol.MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > protocol.MaxBundleSize {
		return nil, fmt.Errorf("%s: larger than a bundle may be (%d bytes)", path, protocol.MaxBundleSize)
	}
	return data, nil
}

func printBundleReport(w io.Writer, rep *protocol.BundleReport, fed *config.Federation) {
	if r := rep.Receipt; r != nil {
		fmt.Fprintf(w, "receipt     %s\n", r.CID())
		fmt.Fprintf(w, "issuer      %s\n", r.Issuer())
		if body, ok := r.Receipt(); ok && rep.Manifest != nil {
			fmt.Fprintf(w, "decision    %d of %d\n", rep.Manifest.Item, len(body.Decisions))
		}
		signed := time.UnixMilli(r.IssuedAt()).UTC().Format(time.RFC3339)
		if b := rep.Block; b != nil {
			fmt.Fprintf(w, "verdict     %s, signed %s\n", strings.ToUpper(b.Verdict), signed)
		} else {
			fmt.Fprintf(w, "signed      %s\n", signed)
		}
	}
	fmt.Fprintf(w, "federation  %s (%s)\n\n", fed.Name, strings.Join(fed.Codes(), ", "))
	for _, s := range rep.Steps {
		mark := "pass"
		switch {
		case s.Skipped:
			mark = "skip"
		case !s.OK:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %-4s  %-20s %s\n", mark, s.ID, s.Detail)
	}
	d := rep.Decision
	if d == nil {
		return
	}
	if len(rep.WithheldChecks) > 0 {
		// Without the withheld notices the recomputation may differ from
		// the signed verdict; it is no verdict of its own.
		fmt.Fprintf(w, "\nrecomputed from the bundle without the withheld evidence: %s (the signed verdict, %s, stands unconfirmed)\n",
			strings.ToUpper(d.Verdict), strings.ToUpper(rep.Block.Verdict))
	} else {
		fmt.Fprintf(w, "\nrecomputed from the bundle: %s\n", strings.ToUpper(d.Verdict))
	}
	for _, ch := range d.Checks {
		if slices.Contains(rep.WithheldChecks, ch.ID) {
			fmt.Fprintf(w, "  %-4s  %-21s %s\n", "withheld", ch.ID, "its evidence is withheld from the caller the bundle was made for: neither confirmed nor refuted")
			continue
		}
		ev := ""
		if ch.Evidence != nil {
			ev = ch.Evidence.String()
		}
		detail := ch.Detail
		if ch.Reason != "" {
			detail = "[" + ch.Reason + "] " + detail
		}
		fmt.Fprintf(w, "  %-4s  %-21s %s%s\n", passOrFail(ch.OK), ch.ID, detail, evidenceNote(ev))
	}
}

func passOrFail(ok bool) string {
	if ok {
		return "pass"
	}
	return "FAIL"
}
