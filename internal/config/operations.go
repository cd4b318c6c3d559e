package config

import (
	"net"
	"strconv"
	"time"
)

// validateOperations checks the metrics and admin page settings.
func (c *Config) validateOperations() Problems {
	var ps Problems
	add := func(key, msg string) { ps = append(ps, Problem{Key: key, Msg: msg}) }
	m := &c.Metrics
	if m.Listen != "" {
		if !m.Enabled {
			add("metrics.listen", "is set but metrics.enabled is false: set metrics.enabled: true to serve /metrics there")
		}
		if _, port, err := net.SplitHostPort(m.Listen); err != nil {
			add("metrics.listen", "must be host:port, like 127.0.0.1:9100 (got "+strconv.Quote(m.Listen)+")")
		} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			add("metrics.listen", "port "+strconv.Quote(port)+" must be a number from 0 to 65535")
		} else if m.Listen == c.Listen && port != "0" {
			add("metrics.listen", "must differ from listen ("+c.Listen+"); leave it empty to serve /metrics on the main listener")
		}
	} else if m.Enabled && !c.Dev && c.Admin.Key == "" {
		add("metrics.enabled", "/metrics on the main listener is behind admin.key, which is empty: set admin.key, or metrics.listen for a listener of its own")
	}
	if c.Admin.Enabled && c.Admin.Key == "" {
		add("admin.enabled", "the admin page needs admin.key (HERALD_ADMIN_KEY): its login form asks for it")
	}
	if c.Admin.SessionTTL < Duration(time.Minute) || c.Admin.SessionTTL > Duration(30*24*time.Hour) {
		add("admin.session_ttl", "must be from 1m to 720h (got "+c.Admin.SessionTTL.String()+")")
	}
	return ps
}
