// push_load: N concurrent pushers POST one body M times in all to a URL
// (keep-alive connections), then print requests/s, body MB/s and the
// answers by status. The receiver's throughput and memory figures
// (tests/integration/test_receive.sh) come from it.
//
//	push_load -url URL -body FILE [-c 100] [-n 2000] [-H 'Name: value']...
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"
)

type headers []string

func (h *headers) String() string     { return strings.Join(*h, ",") }
func (h *headers) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	url := flag.String("url", "", "target URL")
	bodyFile := flag.String("body", "", "request body file")
	conc := flag.Int("c", 100, "concurrent pushers")
	total := flag.Int("n", 2000, "requests in all")
	var hs headers
	flag.Var(&hs, "H", "header 'Name: value' (repeatable)")
	flag.Parse()
	body, err := os.ReadFile(*bodyFile)
	if err != nil || *url == "" {
		fmt.Fprintln(os.Stderr, "push_load: -url and a readable -body are required")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conc, MaxConnsPerHost: *conc}
	client := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	var mu sync.Mutex
	codes := map[int]int{}
	next := make(chan struct{}, *total)
	for i := 0; i < *total; i++ {
		next <- struct{}{}
	}
	close(next)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				req, _ := http.NewRequest("POST", *url, bytes.NewReader(body))
				for _, h := range hs {
					kv := strings.SplitN(h, ":", 2)
					if len(kv) == 2 {
						req.Header.Set(strings.TrimSpace(kv[0]), strings.TrimSpace(kv[1]))
					}
				}
				code := 0
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					code = resp.StatusCode
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	ok := codes[200]
	var keys []int
	for k := range codes {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d:%d", k, codes[k]))
	}
	fmt.Printf("requests %d in %.2f s: %.0f ok/s, %.1f MB/s of bodies (%d bytes each); answers %s\n",
		*total, secs, float64(ok)/secs, float64(ok)*float64(len(body))/secs/1e6, len(body),
		strings.Join(parts, " "))
}
