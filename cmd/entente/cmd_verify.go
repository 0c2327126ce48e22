package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

func init() {
	register(&command{
		name: "verify",
		summary: "ask a node whether a cross-border transfer may go ahead, and print its signed verdict\n\n" +
			"The request comes from --file (the JSON of POST /v1/transfers/verify) or from flags. A resale\n" +
			"(tier 2 and above) names the decision through which the sender received the data:\n" +
			"--parent RECEIPT[:ITEM], as 'entente verify' printed it for that transfer.\n" +
			"Exit status: 0 allow, 3 deny, 1 error, 2 usage.",
		usage: "verify (--file REQUEST.json | --consent CID --from CODE --to CODE --sender PEERID --recipient PEERID --purpose P --category C... --tier N --retention-days N [--parent RECEIPT[:ITEM]] [--at TIME]) [--api HOST:PORT] [--home DIR] [--token-file FILE] [--json]",
		run:   runVerify,
	})
}

// errDenied makes verify exit 3 when the verdict is deny.
var errDenied = errors.New("the transfer is denied")

// exitDenied is the exit status of a deny verdict.
const exitDenied = 3

func runVerify(env *cliEnv, args []string) error {
	c := findCommand("verify")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	file := flags.String("file", "", "a transfer request as JSON (- for stdin)")
	consent := flags.String("consent", "", "the consent's CID")
	from := flags.String("from", "", "where the data leaves from (jurisdiction code)")
	to := flags.String("to", "", "where it goes (jurisdiction code)")
	sender := flags.String("sender", "", "the sending controller's peer ID (at tiers 0 and 1, the consent's issuer)")
	recipient := flags.String("recipient", "", "the receiving controller's peer ID")
	parent := flags.String("parent", "", "for a resale: the decision that let the sender receive the data, RECEIPT[:ITEM] (item 0 by default)")
	purpose := flags.String("purpose", "", "the purpose of the transfer")
	tier := flags.Int("tier", -1, "the resale tier (0 = the collecting platform, 1 = a direct partner, 2+ = further resale)")
	retention := flags.Int("retention-days", -1, "how long the recipient keeps the data, in days")
	at := flags.String("at", "", "decision time, RFC 3339 (default now)")
	asJSON := flags.Bool("json", false, "print the API's JSON answer")
	var categories multiFlag
	flags.Var(&categories, "category", "a biometric category (face, fingerprint, iris, voice, gait, derived); repeat for several")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	var body []byte
	if *file != "" {
		if *consent != "" || *from != "" || *to != "" || *sender != "" || *recipient != "" || *parent != "" || *purpose != "" || len(categories) > 0 || *tier >= 0 || *retention >= 0 {
			return usagef("give the request either as --file or as flags, not both")
		}
		if body, err = readFileOrStdin(*file); err != nil {
			return err
		}
	} else {
		missing := []string{}
		for name, v := range map[string]string{"--consent": *consent, "--from": *from, "--to": *to, "--sender": *sender, "--recipient": *recipient, "--purpose": *purpose} {
			if v == "" {
				missing = append(missing, name)
			}
		}
		if len(categories) == 0 {
			missing = append(missing, "--category")
		}
		if *tier < 0 {
			missing = append(missing, "--tier")
		}
		if *retention < 0 {
			missing = append(missing, "--retention-days")
		}
		if len(missing) > 0 {
			return usagef("missing %s (or give --file)", strings.Join(sortedStrings(missing), ", "))
		}
		req := map[string]any{
			"consent": *consent, "from": *from, "to": *to, "sender": *sender, "recipient": *recipient, "purpose": *purpose,
			"categories": sortedStrings(categories), "tier": *tier, "retention_days": *retention,
		}
		if *parent != "" {
			ref, err := parseDecisionRef(*parent)
			if err != nil {
				return usagef("--parent: %v", err)
			}
			req["parent"] = ref
		}
		if *at != "" {
			if _, err := time.Parse(time.RFC3339, *at); err != nil {
				return usagef("--at: %v", err)
			}
			req["at"] = *at
		}
		body, _ = json.Marshal(req)
	}
	cl, err := af.client(env, true)
	if err != nil {
		return err
	}
	_, data, err := cl.do(http.MethodPost, "/v1/transfers/verify", "application/json", "application/json", body)
	if err != nil {
		return err
	}
	var v api.VerdictView
	if err := json.Unmarshal(data, &v); err != nil {
		return fmt.Errorf("the node's answer: %w", err)
	}
	if *asJSON {
		fmt.Fprintln(env.stdout, strings.TrimSpace(string(data)))
	} else {
		printVerdict(env, &v)
	}
	if v.Verdict != "allow" {
		return errDenied
	}
	return nil
}

// parseDecisionRef reads RECEIPT[:ITEM], a decision of a receipt.
func parseDecisionRef(s string) (protocol.DecisionRefJSON, error) {
	receipt, itemText, hasItem := strings.Cut(s, ":")
	c, err := protocol.ParseCID(receipt)
	if err != nil {
		return protocol.DecisionRefJSON{}, fmt.Errorf("%q: %w", receipt, err)
	}
	ref := protocol.DecisionRefJSON{Receipt: c.String()}
	if hasItem {
		item, err := strconv.ParseInt(itemText, 10, 64)
		if err != nil || item < 0 {
			return ref, fmt.Errorf("%q is not a decision's index (0, 1, ...)", itemText)
		}
		ref.Item = item
	}
	return ref, nil
}

func printVerdict(env *cliEnv, v *api.VerdictView) {
	w := env.stdout
	receipt := fmt.Sprintf("%s:%d", v.Receipt, v.Item)
	switch {
	case v.Receipt != "":
	case v.Unsigned == service.UnsignedHeld:
		receipt = "none: the node holds signing after a restore, so the verdict is not signed ('entente status' says what it waits for)"
	default:
		receipt = "none: the decision time is outside the signing window, so the verdict is not signed"
	}
	fmt.Fprintf(w, "verdict  %s\nreceipt  %s\n\n", strings.ToUpper(v.Verdict), receipt)
	for _, c := range v.Checks {
		mark := "pass"
		if !c.OK {
			mark = "FAIL"
		}
		detail := c.Detail
		if c.Reason != "" {
			detail = "[" + c.Reason + "] " + detail
		}
		fmt.Fprintf(w, "  %-4s  %-21s %s%s\n", mark, c.ID, detail, evidenceNote(c.Evidence))
	}
}

// evidenceNote names a check's evidence, a record's full CID, after its
// detail ("" when it has none).
func evidenceNote(cid string) string {
	if cid == "" {
		return ""
	}
	return "  (evidence " + cid + ")"
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
