package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opendts/opendts/internal/client"
	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/dtsapi"
)

const dtsUsage = `Usage: opendts dts <Action> [--Param value ...] [client flags]
       opendts dts <Action> -h      the action's parameters and an example

Calls one action of the DTS 2018-03-30 API, with tccli's conventions:
structured parameters as JSON (--MigrateOption '{"RunMode":1}') or dotted
(--MigrateOption.RunMode 1); values are sent in the types the action
declares (--Limit 10 as the Integer 10). Prints the Response as JSON.

Client flags (lower case, anywhere on the line):
  --endpoint HOST:PORT|URL   OPENDTS_ENDPOINT, default 127.0.0.1:9988
  --region REGION            OPENDTS_REGION, default ap-guangzhou
  --secret-id ID             OPENDTS_SECRET_ID
  --secret-key KEY           OPENDTS_SECRET_KEY
  --credentials-file FILE    first pair of this file when no id/key is given;
                             default OPENDTS_DATA_DIR/credentials

Exit status: 0 success, 1 the API answered an error (its code is printed),
2 usage, 3 the endpoint could not be reached.
`

// clientFlags takes the client flags out of args, wherever they are, and
// returns them with the rest.
func clientFlags(args []string) (map[string]string, []string, error) {
	flags := map[string]string{
		"endpoint":         env("OPENDTS_ENDPOINT", "127.0.0.1:9988"),
		"region":           env("OPENDTS_REGION", "ap-guangzhou"),
		"secret-id":        os.Getenv("OPENDTS_SECRET_ID"),
		"secret-key":       os.Getenv("OPENDTS_SECRET_KEY"),
		"credentials-file": filepath.Join(env("OPENDTS_DATA_DIR", "./opendts-data"), "credentials"),
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		name := strings.TrimPrefix(a, "--")
		key, val, hasVal := strings.Cut(name, "=")
		if _, ok := flags[key]; ok && strings.HasPrefix(a, "--") {
			if !hasVal {
				if i+1 >= len(args) {
					return nil, nil, fmt.Errorf("--%s needs a value", key)
				}
				i++
				val = args[i]
			}
			flags[key] = val
			continue
		}
		rest = append(rest, a)
	}
	return flags, rest, nil
}

// newClient builds the API client from the client flags.
func newClient(flags map[string]string) (*client.Client, error) {
	id, key := flags["secret-id"], flags["secret-key"]
	if id == "" || key == "" {
		ring, err := cloudapi.LoadKeyRing(flags["credentials-file"])
		if err != nil {
			return nil, fmt.Errorf("no credentials: set OPENDTS_SECRET_ID and OPENDTS_SECRET_KEY or --credentials-file (%w)", err)
		}
		for i, k := range ring {
			if id == "" || id == i {
				id, key = i, k
				break
			}
		}
	}
	return &client.Client{Endpoint: flags["endpoint"], SecretID: id, SecretKey: key, Region: flags["region"]}, nil
}

// exitFor turns a call's error into the documented exit status.
func exitFor(err error) int {
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Fprintf(os.Stderr, "%s: %s\n(RequestId %s)\n", apiErr.Code, apiErr.Message, apiErr.RequestID)
		return 1
	}
	fmt.Fprintln(os.Stderr, "opendts:", err)
	return 3
}

// dts runs `opendts dts`; it returns the exit status.
func dts(args []string) int {
	for _, a := range args {
		if a == "-h" || a == "--help" {
			if name := firstWord(args); name != "" {
				ref, ok := dtsapi.LookupAction(name)
				if !ok {
					fmt.Fprintf(os.Stderr, "opendts dts: %s is not an action opendts implements\n\n", name)
					printActions(os.Stderr)
					return 2
				}
				printAction(os.Stdout, ref)
				return 0
			}
			fmt.Print(dtsUsage)
			printActions(os.Stdout)
			return 0
		}
	}
	flags, rest, err := clientFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opendts dts:", err)
		return 2
	}
	var action string
	var params []string
	for _, a := range rest {
		if action == "" && !strings.HasPrefix(a, "-") {
			action = a
			continue
		}
		params = append(params, a)
	}
	if action == "" {
		fmt.Fprint(os.Stderr, dtsUsage)
		printActions(os.Stderr)
		return 2
	}
	p, err := client.ParseArgs(params)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opendts dts:", err)
		return 2
	}
	if ref, ok := dtsapi.LookupAction(action); ok {
		p = ref.Typed(p)
	}
	c, err := newClient(flags)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opendts dts:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	resp, err := c.Call(ctx, action, p)
	if err != nil {
		return exitFor(err)
	}
	out, _ := json.MarshalIndent(resp, "", "  ")
	fmt.Println(string(out))
	return 0
}

// firstWord is the action named on a command line: its first word that is
// not a flag nor a flag's value.
func firstWord(args []string) string {
	_, rest, err := clientFlags(args)
	if err != nil {
		return ""
	}
	for _, a := range rest {
		if !strings.HasPrefix(a, "-") {
			return a
		}
	}
	return ""
}

func printActions(w io.Writer) {
	fmt.Fprintln(w, "\nActions (opendts dts <Action> -h for one):")
	for _, a := range dtsapi.Actions() {
		fmt.Fprintf(w, "  %-24s %s\n", a.Name, a.Doc)
	}
}

// printAction is one action's help: its parameters with their API types,
// the required ones marked, the structures they use, and an example.
func printAction(w io.Writer, a dtsapi.ActionRef) {
	fmt.Fprintf(w, "opendts dts %s: %s\n", a.Name, a.Doc)
	table := func(title string, params []dtsapi.ParamRef) {
		fmt.Fprintf(w, "\n%s\n", title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, p := range params {
			req := ""
			if p.Required {
				req = "required"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", p.Name, p.Type, req, p.Doc)
		}
		tw.Flush()
	}
	if len(a.Params) == 0 {
		fmt.Fprintln(w, "\nParameters: none")
	} else {
		table("Parameters:", a.Params)
	}
	for _, s := range a.Structs {
		table(s.Name+":", s.Fields)
	}
	fmt.Fprintf(w, "\nExample:\n  %s\n", a.Example)
	fmt.Fprintln(w, "\nStructures go as JSON (--SrcInfo '{\"Ip\":...}') or dotted (--SrcInfo.Port 3306);")
	fmt.Fprintln(w, "client flags as in opendts dts -h.")
}
