// pprof_total reads gzip pprof files with Google's own Go parser — an
// implementation independent of Stoke's C encoder — and prints, per file:
//
//	total <samples>
//	leaf <samples>\t<name>      (one line per leaf function, sorted by name)
//
// The leaf is Location.line[0] of a sample's first location (the innermost
// inlined frame at the sampled address). A location without lines prints as
// "<basename of mapping>+0x<hex address>", a sample without locations as
// "[unknown]", and ';' or control characters in names become '_', so the
// output is comparable with Stoke's folded files. Samples are the first
// sample type whose type is "samples" (else the first).
//
// Build offline against Debian's golang-github-google-pprof-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o build/pprof_total ./tests/integration/pprof_total
package main

import (
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/google/pprof/profile"
)

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ';' || r < 0x20 {
			return '_'
		}
		return r
	}, s)
}

func leafName(s *profile.Sample) string {
	if len(s.Location) == 0 {
		return "[unknown]"
	}
	loc := s.Location[0]
	if len(loc.Line) == 0 || loc.Line[0].Function == nil {
		base := ""
		if loc.Mapping != nil {
			base = path.Base(loc.Mapping.File)
		}
		return fmt.Sprintf("%s+0x%x", sanitize(base), loc.Address)
	}
	return sanitize(loc.Line[0].Function.Name)
}

func run(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	p, err := profile.Parse(f)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	if err := p.CheckValid(); err != nil {
		return fmt.Errorf("%s: invalid: %v", file, err)
	}
	idx := 0
	for i, st := range p.SampleType {
		if st.Type == "samples" {
			idx = i
			break
		}
	}
	if len(p.SampleType) == 0 {
		return fmt.Errorf("%s: no sample types", file)
	}
	var total int64
	leaves := map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[idx]
		total += v
		leaves[leafName(s)] += v
	}
	names := make([]string, 0, len(leaves))
	for n, v := range leaves {
		if v != 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	fmt.Printf("total %d\n", total)
	for _, n := range names {
		fmt.Printf("leaf %d\t%s\n", leaves[n], n)
	}
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pprof_total FILE.pb.gz...")
		os.Exit(2)
	}
	for _, file := range os.Args[1:] {
		if err := run(file); err != nil {
			fmt.Fprintln(os.Stderr, "pprof_total:", err)
			os.Exit(1)
		}
	}
}
