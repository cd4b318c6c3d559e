package conn

import "sync"

// Workers run short jobs on long-lived goroutines. Front doors handle a
// connection's incoming messages on them: a command's decoding, token check
// and hub calls grow a goroutine's stack to 8 KiB; done on the connection's
// reader, that stack stays for the connection's whole life. On a worker the
// reader stays small, which is most of an idle connection's memory after the
// buffers. The reader waits for each message's result (Do), so a
// connection's commands keep their order.
//
// A job goes to an idle worker when there is one; when all are busy (a
// command waiting on a JWKS fetch, say) a new goroutine starts, so no job
// waits for another connection's.

// maxIdleWorkers bounds the workers kept waiting for work in one pool.
const maxIdleWorkers = 128

type Workers struct {
	jobs chan func()   // unbuffered: a send succeeds only to an idle worker
	idle chan struct{} // a token per idle worker, bounding their number
	quit chan struct{} // closed at shutdown: idle workers end
	once sync.Once
}

// NewWorkers returns an empty set of workers.
func NewWorkers() *Workers {
	return &Workers{jobs: make(chan func()), idle: make(chan struct{}, maxIdleWorkers), quit: make(chan struct{})}
}

// submit runs f on an idle worker or a new goroutine.
func (p *Workers) submit(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.work(f)
	}
}

func (p *Workers) work(f func()) {
	for {
		f()
		select {
		case p.idle <- struct{}{}:
		default:
			return // enough idle workers already
		}
		select {
		case f = <-p.jobs:
			<-p.idle
		case <-p.quit:
			<-p.idle
			return
		}
	}
}

// Stop ends the idle workers; busy ones end after their job.
func (p *Workers) Stop() { p.once.Do(func() { close(p.quit) }) }

// Do runs f on a worker and waits for it. done is the caller's reusable
// channel (buffered, capacity 1), so a call allocates only the closure.
func Do[T any](p *Workers, done chan T, f func() T) T {
	p.submit(func() { done <- f() })
	return <-done
}
