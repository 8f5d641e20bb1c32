// bench/dns/go/main.go -server ADDR [-c 1000] [-rounds 5] [-name host.test]:
// the same load through Go's pure resolver (run with GODEBUG=netdns=go):
// -c concurrent LookupHost calls (A + AAAA), -rounds times after a
// warm-up round, every query sent to ADDR. Prints "lookups/s N errors E".
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"sync"
	"time"
)

func main() {
	server := flag.String("server", "127.0.0.1:53", "DNS server")
	conc := flag.Int("c", 1000, "concurrent lookups")
	rounds := flag.Int("rounds", 5, "rounds")
	name := flag.String("name", "host.test", "name to look up")
	flag.Parse()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, *server)
	}}
	round := func() int {
		var wg sync.WaitGroup
		var mu sync.Mutex
		errs := 0
		for i := 0; i < *conc; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := r.LookupHost(context.Background(), *name); err != nil {
					mu.Lock()
					errs++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return errs
	}
	round()
	t0, errs := time.Now(), 0
	for i := 0; i < *rounds; i++ {
		errs += round()
	}
	el := time.Since(t0).Seconds()
	fmt.Printf("lookups/s %.0f errors %d\n", float64(*conc**rounds)/el, errs)
}
