package centrifuge

import "sync"

// A pool runs short jobs on long-lived goroutines. It handles frames: a
// command's JSON decoding, token check and hub calls grow a goroutine's stack
// to 8 KiB; done on the connection's reader, that stack stays for the
// connection's whole life. On a pool worker the reader stays small, which is
// most of an idle connection's memory after the buffers. The reader waits for
// each frame's result, so a connection's commands keep their order.
//
// A job goes to an idle worker when there is one; when all are busy (a
// command waiting on a JWKS fetch, say) a new goroutine starts, so no job
// waits for another connection's.

// maxIdleWorkers bounds the workers kept waiting for work in one pool.
const maxIdleWorkers = 128

type pool struct {
	jobs chan func()   // unbuffered: a send succeeds only to an idle worker
	idle chan struct{} // a token per idle worker, bounding their number
	quit chan struct{} // closed at shutdown: idle workers end
	once sync.Once
}

func newPool() *pool {
	return &pool{jobs: make(chan func()), idle: make(chan struct{}, maxIdleWorkers), quit: make(chan struct{})}
}

// submit runs f on an idle worker or a new goroutine.
func (p *pool) submit(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.work(f)
	}
}

func (p *pool) work(f func()) {
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

// stop ends the idle workers; busy ones end after their job.
func (p *pool) stop() { p.once.Do(func() { close(p.quit) }) }

// handle runs a frame's commands on a worker and returns the result.
func (p *pool) handle(s *session, data []byte, done chan *Disconnect) *Disconnect {
	p.submit(func() { done <- s.handleFrame(data) })
	return <-done
}
