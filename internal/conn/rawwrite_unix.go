//go:build unix && !linux

package conn

import "syscall"

const rawWriteSupported = true

// rawWrite is one write(2) on the connection's non-blocking socket.
func rawWrite(fd uintptr, b []byte) (int, error) { return syscall.Write(int(fd), b) }
