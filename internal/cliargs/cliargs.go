// Package cliargs parses command lines whose flags may come before, between or after the
// positional arguments ("sub TOPIC -k"), where the flag package alone stops at the first
// positional argument. It only parses; what a command line means is up to its command.
package cliargs

import "flag"

// Parse parses args with fs, letting flags follow positional arguments, and returns the
// positional arguments in order. Errors are fs.Parse's (flag.ErrHelp for -h).
func Parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
