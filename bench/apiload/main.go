// Command apiload measures how opendts's API holds up as jobs accumulate.
//
//	apiload fill -data-dir DIR -jobs N     store N jobs directly (server stopped)
//	apiload load -endpoint HOST:PORT ...   open-loop DescribeMigrateJobs at fixed rates
//	apiload create -endpoint HOST:PORT ... time CreateMigrateJob calls one by one
//
// bench/api.sh runs all three; see bench/README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: apiload fill|load|create [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "fill":
		err = fill(os.Args[2:])
	case "load":
		err = load(os.Args[2:])
	case "create":
		err = create(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apiload:", err)
		os.Exit(1)
	}
}
