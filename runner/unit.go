package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// unit is one pipeline's running parts, built from its plan: the sender
// (and a cloud's catch-up responder) of a sending pipeline, or the
// receiver, its router and a device's catch-up of a receiving one, with
// the pipeline's triggers and what they hold. A reload stops and starts
// units while the others run on; the stores and transports are the
// runner's and outlive them.
type unit struct {
	plan      PipelinePlan
	sender    *sender
	responder *responder
	receiver  *receiver
	router    *message.Router
	triggers  []*triggerQueue
	// closers are its stages, triggers and change hooks, closed last.
	closers []interface{ Close(context.Context) error }
	// reg registers the metrics of its stages and triggers, and forgets
	// them when the unit closes.
	reg *trackedRegisterer
	// ctx lives from build to stop: the unit's goroutines run on it.
	ctx    context.Context
	cancel context.CancelFunc

	mu   sync.Mutex
	live unitLive
}

// unitLive is what a unit's start has started so far; its stop stops
// exactly that.
type unitLive struct {
	stopping   bool // stop began: start nothing more
	sender     bool
	responder  bool
	catchUp    bool
	triggers   []*triggerQueue
	routerDone chan struct{} // closed when router.Run returns (nil: never run)
}

// enlist records a started component, unless the unit's stop began; it
// reports whether the start may go on.
func (u *unit) enlist(add func(*unitLive)) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	add(&u.live)
	return !u.live.stopping
}

func (u *unit) snapshotLive() unitLive {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.live
}

// routerUp reports whether the unit's router runs.
func (u *unit) routerUp() bool {
	lv := u.snapshotLive()
	return lv.routerDone != nil && isClosed(u.router.Running())
}

// startUnits starts units in the order a start needs across pipelines:
// every receiver's router first (each subscribed before anything is
// sent), then the trigger queues, the catch-up responders, the senders
// and last the catch-ups. It stops at the first failure; what started
// stays enlisted for the stop.
func (r *Runner) startUnits(units []*unit) error {
	for _, u := range units {
		if err := u.startRouter(r); err != nil {
			return err
		}
	}
	for _, u := range units {
		for _, q := range u.triggers {
			if !u.enlist(func(l *unitLive) { l.triggers = append(l.triggers, q) }) {
				return errStopping
			}
			go q.run(u.ctx)
		}
	}
	for _, u := range units {
		if rs := u.responder; rs != nil {
			if err := rs.start(u.ctx); err != nil {
				return fmt.Errorf("pipeline %s: catch-up responder: %w", rs.name, err)
			}
			if !u.enlist(func(l *unitLive) { l.responder = true }) {
				return errStopping
			}
		}
	}
	for _, u := range units {
		if s := u.sender; s != nil {
			if err := s.start(u.ctx); err != nil {
				return err
			}
			if !u.enlist(func(l *unitLive) { l.sender = true }) {
				return errStopping
			}
		}
	}
	for _, u := range units {
		if rc := u.receiver; rc != nil && rc.catchUp != nil {
			rc.catchUp.start(u.ctx)
			if !u.enlist(func(l *unitLive) { l.catchUp = true }) {
				return errStopping
			}
		}
	}
	return nil
}

// startRouter runs a receiving unit's router and returns once it runs.
func (u *unit) startRouter(r *Runner) error {
	if u.router == nil {
		return nil
	}
	ctx := u.ctx
	done, failed := make(chan struct{}), make(chan error, 1)
	if !u.enlist(func(l *unitLive) { l.routerDone = done }) {
		close(done)
		return errStopping
	}
	go func() {
		defer close(done)
		err := u.router.Run(ctx)
		failed <- err
		if err != nil && ctx.Err() == nil {
			r.log.Error("router stopped", "pipeline", u.plan.Name, "err", err)
		}
	}()
	select {
	case <-u.router.Running():
		return nil
	case err := <-failed:
		// Run returns before running only on an error (a receiver that
		// cannot subscribe): the start fails with it.
		if err == nil {
			err = errors.New("stopped before it ran")
		}
		return fmt.Errorf("pipeline %s: router: the receiver did not start: %w", u.plan.Name, err)
	case <-ctx.Done():
		return errStopping
	}
}

// stopUnits drains and stops units, in the order a stop needs across
// pipelines: until ctx ends, every sender drains (sends what it holds and
// waits for its acks), then the routers close and the receivers' last
// acks go out; then the units' contexts are cancelled and their
// goroutines waited for (at most shutdownGrace past ctx's end; starting,
// if not nil, is a start still running that is waited for too), and
// their stages and triggers closed. Whatever is not acknowledged stays
// in its outbox. The errors report what was not drained and what was
// abandoned.
func stopUnits(ctx context.Context, units []*unit, starting <-chan struct{}) error {
	lives := make([]unitLive, len(units))
	for i, u := range units {
		u.mu.Lock()
		u.live.stopping = true
		lives[i] = u.live
		u.mu.Unlock()
	}
	var errs []error
	var emu sync.Mutex
	addErr := func(err error) {
		emu.Lock()
		errs = append(errs, err)
		emu.Unlock()
	}
	var wg sync.WaitGroup
	for i, u := range units {
		if !lives[i].sender {
			continue
		}
		wg.Go(func() {
			if err := u.sender.drain(ctx); err != nil {
				addErr(fmt.Errorf("pipeline %s: drain: %w (unacknowledged changes stay in the outbox)", u.plan.Name, err))
			}
		})
	}
	wg.Wait()
	routerClosed := make([]chan struct{}, len(units))
	closeRouter := func(i int) {
		routerClosed[i] = make(chan struct{})
		go func() {
			defer close(routerClosed[i])
			if err := units[i].router.Close(); err != nil {
				addErr(fmt.Errorf("pipeline %s: router: %w", units[i].plan.Name, err))
			}
		}()
	}
	for i, u := range units {
		if lives[i].routerDone != nil && isClosed(u.router.Running()) {
			closeRouter(i)
		}
	}
	for i := range units {
		if routerClosed[i] != nil {
			waitOrEnd(ctx, routerClosed[i])
		}
	}
	acks := make(chan struct{})
	go func() {
		for _, u := range units {
			if u.receiver != nil {
				u.receiver.ackWG.Wait() // the last acks go out before the contexts end
			}
		}
		close(acks)
	}()
	waitOrEnd(ctx, acks)

	// Cancel what runs, then wait for it within the grace.
	for _, u := range units {
		u.cancel()
	}
	gctx, gcancel := graceContext(ctx, shutdownGrace)
	defer gcancel()
	var abandoned []string
	wait := func(what string, done <-chan struct{}) {
		if done != nil && !waitOrEnd(gctx, done) {
			abandoned = append(abandoned, what)
		}
	}
	wait("the pipelines' start", starting)
	for i, u := range units {
		lives[i] = u.snapshotLive() // what a start began meanwhile
		if lives[i].routerDone != nil && routerClosed[i] == nil && isClosed(u.router.Running()) {
			closeRouter(i) // it began running meanwhile
		}
	}
	wait("the receivers' acks", acks)
	for i, u := range units {
		name := "pipeline " + u.plan.Name
		wait(name+": router close", routerClosed[i])
		wait(name+": router", lives[i].routerDone)
		if lives[i].sender {
			wait(name+": sender", u.sender.done)
		}
		if lives[i].responder {
			wait(name+": catch-up responder", u.responder.done)
		}
		if lives[i].catchUp {
			wait(name+": catch-up", u.receiver.catchUp.done)
		}
		for _, q := range lives[i].triggers {
			wait("trigger "+q.name, q.done)
		}
	}
	emu.Lock()
	if len(abandoned) > 0 {
		errs = append(errs, fmt.Errorf("stop abandoned what still ran %s past its deadline (%s): %w",
			shutdownGrace, strings.Join(abandoned, "; "), ctx.Err()))
	}
	emu.Unlock()

	// Close in any case, with a short context if ctx has ended.
	cctx := ctx
	if ctx.Err() != nil {
		var ccancel context.CancelFunc
		cctx, ccancel = context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
		defer ccancel()
	}
	for _, u := range units {
		if err := u.close(cctx); err != nil {
			addErr(err)
		}
	}
	emu.Lock()
	defer emu.Unlock()
	return errors.Join(errs...)
}

// close closes the unit's stages, triggers and hooks, and unregisters
// their metrics; its goroutines must have ended. It is also how a unit
// built and never started is let go.
func (u *unit) close(ctx context.Context) error {
	u.cancel()
	var errs []error
	for _, c := range slices.Backward(u.closers) {
		if err := c.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s: %w", u.plan.Name, err))
		}
	}
	u.closers = nil
	u.reg.unregisterAll()
	return errors.Join(errs...)
}
