//go:build !unix

package conn

import "syscall"

// Without raw socket writes, frames go through net.Conn.Write with a deadline.
const rawWriteSupported = false

func rawWrite(uintptr, []byte) (int, error) { return 0, syscall.EINVAL }
