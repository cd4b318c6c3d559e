package conn

import (
	"syscall"
	"unsafe"
)

const rawWriteSupported = true

// rawWrite is one send(2) on the connection's non-blocking socket.
//
// send(2) instead of write(2) skips the VFS layer of a write (about 5 % of
// the server's CPU at 10 msg/s to 1000 subscribers). It is a raw syscall: the
// socket is non-blocking, so the call never waits, and the runtime need not
// hand the processor to another thread meanwhile (which its syscall
// bookkeeping would do for calls that take more than 20 µs).
func rawWrite(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall6(syscall.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_NOSIGNAL, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
