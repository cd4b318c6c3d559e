package centrifuge

import "sync"

// Commands run on a small pool of long-lived worker goroutines rather than
// on each connection's reading goroutine. Handling a command (JSON decoding,
// token verification, hub calls) grows a goroutine's stack to 8 KiB; an idle
// connection's reader then keeps that stack for its whole life. With the
// work done elsewhere the reader stays small, which is most of an idle
// connection's memory after the buffers. The reader still waits for each
// frame's result, so a connection's commands keep their order.

// maxIdleWorkers bounds the workers kept waiting for work; when all are busy
// (say a command waits on a JWKS fetch) a new one is started, so no command
// waits for another connection's.
const maxIdleWorkers = 64

type frameJob struct {
	s    *session
	data []byte
	done chan *Disconnect
}

type workerPool struct {
	jobs chan frameJob // unbuffered: a send succeeds only to an idle worker
	idle chan struct{} // a token per idle worker, bounding their number
	quit chan struct{} // closed at shutdown: idle workers end
	once sync.Once
}

func newWorkerPool() *workerPool {
	return &workerPool{jobs: make(chan frameJob), idle: make(chan struct{}, maxIdleWorkers), quit: make(chan struct{})}
}

// stop ends the idle workers; busy ones end after their frame.
func (p *workerPool) stop() { p.once.Do(func() { close(p.quit) }) }

// run handles a frame on a worker and returns its result.
func (p *workerPool) run(s *session, data []byte, done chan *Disconnect) *Disconnect {
	j := frameJob{s: s, data: data, done: done}
	select {
	case p.jobs <- j:
	default:
		go p.work(j)
	}
	return <-done
}

func (p *workerPool) work(j frameJob) {
	for {
		j.done <- j.s.handleFrame(j.data)
		select {
		case p.idle <- struct{}{}:
		default:
			return // enough idle workers already
		}
		select {
		case j = <-p.jobs:
			<-p.idle
		case <-p.quit:
			<-p.idle
			return
		}
	}
}
