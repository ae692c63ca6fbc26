package service

import (
	"errors"
	"fmt"
	"sync"

	"gotas/internal/fastpath"
	"gotas/internal/nic"
	"gotas/internal/nic/nicopen"
	"gotas/internal/slowpath"
	"gotas/internal/wire"
)

// Service is a running gotas instance.
type Service struct {
	cfg   Config
	port  nic.Port
	host  *slowpath.Host
	cores []*fastpath.Core

	wg      sync.WaitGroup
	errOnce sync.Once
	err     error
	done    chan struct{}
}

// Start opens the NIC and starts the fast-path cores. Errors about the
// configuration (a missing interface) wrap ErrUsage.
func Start(cfg Config) (*Service, error) {
	port, err := openNIC(cfg)
	if err != nil {
		return nil, err
	}
	info := port.Info()
	ip, _ := wire.Addr4From(cfg.Addr.Addr())
	s := &Service{cfg: cfg, port: port, host: slowpath.NewHost(info.MAC, ip), done: make(chan struct{})}
	queues := port.Queues()
	n := min(cfg.Cores, len(queues))
	if n < len(queues) {
		// Unpolled queues would silently eat their share of the flows.
		port.Close()
		return nil, fmt.Errorf("%w: %s has %d queues but --fp-cores-max=%d; raise it or reduce the queues (ethtool -L)",
			ErrUsage, info.Name, len(queues), cfg.Cores)
	}
	for _, q := range queues[:n] {
		c, err := fastpath.NewCore(q, s.host, fastpath.Config{BusyPoll: cfg.BusyPoll, CPU: -1})
		if err != nil {
			s.stopCores()
			port.Close()
			return nil, err
		}
		s.cores = append(s.cores, c)
	}
	for _, c := range s.cores {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := c.Run(); err != nil {
				s.fail(err)
			}
		}()
	}
	return s, nil
}

func (s *Service) fail(err error) {
	s.errOnce.Do(func() {
		s.err = err
		close(s.done)
	})
}

// Failed is closed when a core stops with an error; Stop returns it.
func (s *Service) Failed() <-chan struct{} { return s.done }

// Info describes the opened NIC.
func (s *Service) Info() nic.Info { return s.port.Info() }

// Cores is the number of fast-path cores running.
func (s *Service) Cores() int { return len(s.cores) }

// Stats are the service's counters.
type Stats struct {
	NIC  nic.Stats
	Host slowpath.Stats
	Core fastpath.Stats
}

// Stats reads all counters.
func (s *Service) Stats() Stats {
	st := Stats{NIC: nic.PortStats(s.port), Host: s.host.Stats()}
	for _, c := range s.cores {
		cs := c.Stats()
		st.Core.Iterations += cs.Iterations
		st.Core.Sleeps += cs.Sleeps
		st.Core.Wakeups += cs.Wakeups
		st.Core.TxRetryDropped += cs.TxRetryDropped
	}
	return st
}

func (s *Service) stopCores() {
	for _, c := range s.cores {
		c.Stop()
	}
	s.wg.Wait()
	for _, c := range s.cores {
		c.Close()
	}
	s.cores = nil
}

// Stop stops the cores and closes the NIC, which detaches the XDP program
// or deletes the TAP device the service created. It returns the error a
// core failed with, if any.
func (s *Service) Stop() error {
	s.stopCores()
	err := s.port.Close()
	s.errOnce.Do(func() { close(s.done) })
	return errors.Join(s.err, err)
}

func openNIC(cfg Config) (nic.Port, error) {
	p, err := nicopen.Open(cfg.NIC, nicopen.Options{Addr: cfg.Addr.Addr(), XDPMode: cfg.XDPMode})
	if errors.Is(err, nicopen.ErrConfig) {
		err = fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return p, err
}
