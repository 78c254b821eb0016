package jobs

import (
	"context"

	"github.com/opendts/opendts/internal/engine"
)

// SourceEndpoint resolves a job's source as its runs reach it, with the
// stored password (for listing the source's objects: the web console's
// object tree when a job is modified). The endpoint holds a password: never
// return it to a client.
func (s *Service) SourceEndpoint(ctx context.Context, id string) (engine.Endpoint, error) {
	j, err := s.cfg.Store.GetJob(ctx, id)
	if err != nil {
		return engine.Endpoint{}, storeErr("get job", err)
	}
	return s.endpoint("SrcInfo", j.SrcDatabaseType, j.SrcAccessType, j.Src.InstanceId, j.Src.Ip, j.Src.Port, j.Src.User, j.Src.Password)
}
