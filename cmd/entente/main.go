// Command entente is the entente node and its tools: a thin CLI over the
// packages of this module. Run "entente help" for the commands.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
