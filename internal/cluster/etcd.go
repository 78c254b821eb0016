package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig is how a node reaches etcd.
type EtcdConfig struct {
	// Endpoints, host:port or URLs; https:// ones (or a CA file) use TLS.
	Endpoints []string
	// CAFile, CertFile and KeyFile: TLS to etcd (client certificate
	// optional).
	CAFile, CertFile, KeyFile string
	// Username and Password: etcd's own authentication, when enabled.
	Username, Password string
	// DialTimeout bounds the first connection; default 5 s.
	DialTimeout time.Duration
	// Prefix is where opendts's keys are (default DefaultPrefix): the
	// first read is of a key there, which a user whose role covers only
	// that prefix may read.
	Prefix string
}

// ParseEndpoints splits a comma-separated list, dropping blanks.
func ParseEndpoints(s string) []string {
	var out []string
	for _, e := range strings.Split(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// Connect opens a client and checks that the cluster answers (a
// linearizable read, which needs a majority of the members).
func Connect(ctx context.Context, cfg EtcdConfig) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("no etcd endpoints given")
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	var tlsCfg *tls.Config
	if cfg.CAFile != "" || cfg.CertFile != "" || strings.HasPrefix(cfg.Endpoints[0], "https://") {
		info := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd TLS: %w", err)
		}
	}
	c, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		TLS:         tlsCfg,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zap.NewNop(),
		// Requests fail fast while no member answers instead of waiting
		// for one; callers bound each request with their own timeout.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	if _, err := c.Get(pctx, NewKeys(cfg.Prefix).KeyCheck(), clientv3.WithCountOnly()); err != nil {
		c.Close()
		if errors.Is(err, rpctypes.ErrPermissionDenied) {
			return nil, fmt.Errorf("etcd at %s: permission denied: the etcd user %q needs read and write on the keys under %s", strings.Join(cfg.Endpoints, ","), cfg.Username, NewKeys(cfg.Prefix).Prefix)
		}
		return nil, fmt.Errorf("etcd at %s does not answer (is a majority of its members up?): %w", strings.Join(cfg.Endpoints, ","), err)
	}
	return c, nil
}
