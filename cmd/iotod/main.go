// Command iotod runs the iotod device database and its local API, checks
// configs, and calls a running iotod from the command line.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	if err := newRootCmd().ExecuteContext(context.Background()); err != nil {
		printError(os.Stderr, err)
		os.Exit(1)
	}
}

// printError writes err to w, each of its lines prefixed "iotod: ": a
// config or schema error lists every problem, one a line.
func printError(w io.Writer, err error) {
	for line := range strings.SplitSeq(strings.TrimRight(err.Error(), "\n"), "\n") {
		_, _ = fmt.Fprintln(w, "iotod: "+line)
	}
}
