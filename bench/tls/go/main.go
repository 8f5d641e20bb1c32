// Go peer for bench/tls: stdlib crypto/tls, one goroutine per connection
// (GOMAXPROCS set by the runner), the same shape as ../../../shared/bench/peers/go.
//
//	usage: go-tls-server echo PORT CERT KEY
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
)

// echo: plain Read/Write with a 16 KiB buffer; the handshake runs on the
// first Read (session tickets are on by default, as in coronet).
func echo(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func main() {
	if len(os.Args) < 5 || os.Args[1] != "echo" {
		fmt.Fprintln(os.Stderr, "usage: go-tls-server echo PORT CERT KEY")
		os.Exit(1)
	}
	cert, err := tls.LoadX509KeyPair(os.Args[3], os.Args[4])
	if err != nil {
		panic(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	ln, err := tls.Listen("tcp", "127.0.0.1:"+os.Args[2], cfg)
	if err != nil {
		panic(err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			continue
		}
		go echo(c)
	}
}
