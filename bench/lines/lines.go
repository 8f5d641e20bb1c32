// lines.go: the Go side of bench/lines: bufio.Scanner (with Text(), so
// each line becomes a string as in Lua) over a unix socket pair; a
// goroutine writes the data. Prints "lines bytes seconds".
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	mb := 100
	if len(os.Args) > 1 {
		mb, _ = strconv.Atoi(os.Args[1])
	}
	line := strings.Repeat("x", 79) + "\n"
	block := []byte(strings.Repeat(line, (1<<20)/80))
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		panic(err)
	}
	w, err := net.FileConn(os.NewFile(uintptr(fds[0]), "w"))
	if err != nil {
		panic(err)
	}
	r, err := net.FileConn(os.NewFile(uintptr(fds[1]), "r"))
	if err != nil {
		panic(err)
	}
	go func() {
		for i := 0; i < mb; i++ {
			if _, err := w.Write(block); err != nil {
				panic(err)
			}
		}
		w.Close()
	}()
	start := time.Now()
	sc := bufio.NewScanner(r)
	n, bytes := 0, 0
	for sc.Scan() {
		s := sc.Text()
		n++
		bytes += len(s) + 1
	}
	if err := sc.Err(); err != nil {
		panic(err)
	}
	fmt.Printf("%d %d %.6f\n", n, bytes, time.Since(start).Seconds())
}
