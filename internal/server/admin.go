package server

import (
	"github.com/heraldhub/herald/internal/admin"
)

// adminDoors builds the admin web page (admin.enabled) and returns its routes.
func (s *Server) adminDoors() []frontDoor {
	a := admin.New(admin.Options{Config: s.cfg, Hub: s.hub, Verifier: s.verifier, Metrics: s.metrics, Logger: s.log, Version: s.version})
	s.admin = a
	return []frontDoor{{path: "/admin", handler: a}, {path: "/admin/", handler: a}}
}
