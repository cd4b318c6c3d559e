package metrics

import (
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Snapshot is the value of every metric at one moment, for views that show
// them (the admin page).
type Snapshot map[string]*dto.MetricFamily

// Snapshot gathers every metric once.
func (m *Metrics) Snapshot() Snapshot {
	out := Snapshot{}
	if m == nil {
		return out
	}
	fams, _ := m.reg.Gather()
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// Values sums the series of the metric named name (without the herald_
// prefix) grouped by the values of the labels by, joined with "/" (one
// group "" when by is empty). A histogram's value is its count.
func (s Snapshot) Values(name string, by ...string) map[string]float64 {
	out := map[string]float64{}
	f := s[Namespace+"_"+name]
	if f == nil {
		return out
	}
	for _, m := range f.GetMetric() {
		key := make([]string, len(by))
		for i, l := range by {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == l {
					key[i] = lp.GetValue()
				}
			}
		}
		out[strings.Join(key, "/")] += value(m)
	}
	return out
}

// Total sums every series of the metric named name.
func (s Snapshot) Total(name string) float64 { return s.Values(name)[""] }

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	return 0
}
