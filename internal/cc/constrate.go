package cc

// ConstRate paces a flow at a fixed rate (TAS's const-rate, tas/slow/cc.c),
// whatever the network says; a baseline and a tool for tests.
type ConstRate struct {
	rate     uint32
	interval int
}

func newConstRate(p Params) Controller {
	return &ConstRate{rate: kbps(float64(p.ConstBps)), interval: p.interval(DefaultInterval)}
}

// Update implements Controller.
func (c *ConstRate) Update(*Sample) uint32 { return c.rate }

// Interval implements Controller.
func (c *ConstRate) Interval() int { return c.interval }
