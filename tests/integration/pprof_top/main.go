// pprof_top reads pprof files with Google's own Go parser — independent of
// Stoke's C codec and query engine — and prints, as JSON, what stoke-query's
// /api/v1/top must answer for them merged:
//
//	{"total": N, "self": {"fn": N, ...}, "cum": {"fn": N, ...}}
//
// for the sample type given by -type and -unit. A frame is a line of a
// location (innermost first); a location without lines is
// "<basename of mapping>+0x<hex address>", a sample without locations
// "[unknown]"; cum counts a function once per sample (recursion once).
// Functions whose self and cum are both 0 are left out. Stoke's strings are
// C strings, so a name is cut at its first NUL here too.
//
// Build offline against Debian's golang-github-google-pprof-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o build/pprof_top ./tests/integration/pprof_top
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/google/pprof/profile"
)

func frames(s *profile.Sample) []string {
	var out []string
	for _, loc := range s.Location {
		if len(loc.Line) == 0 {
			base := ""
			if loc.Mapping != nil {
				base = path.Base(loc.Mapping.File)
			}
			out = append(out, fmt.Sprintf("%s+0x%x", base, loc.Address))
			continue
		}
		for _, ln := range loc.Line {
			name := ""
			if ln.Function != nil {
				name = ln.Function.Name
			}
			if i := strings.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		out = append(out, "[unknown]")
	}
	return out
}

func main() {
	typ := flag.String("type", "", "sample type")
	unit := flag.String("unit", "", "sample unit")
	flag.Parse()
	var total int64
	self := map[string]int64{}
	cum := map[string]int64{}
	for _, fn := range flag.Args() {
		f, err := os.Open(fn)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		p, err := profile.Parse(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", fn, err)
			os.Exit(1)
		}
		idx := -1
		for i, st := range p.SampleType {
			if st.Type == *typ && st.Unit == *unit {
				idx = i
				break
			}
		}
		if idx < 0 {
			fmt.Fprintf(os.Stderr, "%s: no sample type %s/%s\n", fn, *typ, *unit)
			os.Exit(1)
		}
		for _, s := range p.Sample {
			v := s.Value[idx]
			if v == 0 {
				continue
			}
			fr := frames(s)
			total += v
			self[fr[0]] += v
			seen := map[string]bool{}
			for _, n := range fr {
				if !seen[n] {
					seen[n] = true
					cum[n] += v
				}
			}
		}
	}
	for k, v := range self {
		if v == 0 && cum[k] == 0 {
			delete(self, k)
		}
	}
	for k, v := range cum {
		if v == 0 && self[k] == 0 {
			delete(cum, k)
		}
	}
	json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"total": total, "self": self, "cum": cum})
}
