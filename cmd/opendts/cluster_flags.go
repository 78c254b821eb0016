package main

import (
	"flag"
	"os"
	"time"

	"github.com/opendts/opendts/internal/app"
	"github.com/opendts/opendts/internal/cluster"
)

// clusterOptions are serve's cluster-mode flags.
type clusterOptions struct {
	endpoints, prefix, nodeName *string
	caFile, certFile, keyFile   *string
	user                        *string
	leaseTTL                    *time.Duration
	maxJobs                     *int
}

func clusterFlags(fs *flag.FlagSet) clusterOptions {
	ttl, err := time.ParseDuration(env("OPENDTS_LEASE_TTL", "10s"))
	if err != nil {
		ttl = 10 * time.Second
	}
	return clusterOptions{
		endpoints: fs.String("etcd-endpoints", env("OPENDTS_ETCD_ENDPOINTS", ""), "comma-separated etcd endpoints; set, the server is a node of a cluster that shares its jobs in etcd (OPENDTS_ETCD_ENDPOINTS)"),
		prefix:    fs.String("etcd-prefix", env("OPENDTS_ETCD_PREFIX", cluster.DefaultPrefix), "where opendts keeps its keys in etcd (OPENDTS_ETCD_PREFIX)"),
		nodeName:  fs.String("node-name", env("OPENDTS_NODE_NAME", ""), "this node's name, unique in the cluster (OPENDTS_NODE_NAME; default host name + listen address)"),
		caFile:    fs.String("etcd-cacert", env("OPENDTS_ETCD_CACERT", ""), "CA certificate file to verify etcd's TLS certificate (OPENDTS_ETCD_CACERT)"),
		certFile:  fs.String("etcd-cert", env("OPENDTS_ETCD_CERT", ""), "client certificate file for etcd's TLS (OPENDTS_ETCD_CERT)"),
		keyFile:   fs.String("etcd-key", env("OPENDTS_ETCD_KEY", ""), "client key file for etcd's TLS (OPENDTS_ETCD_KEY)"),
		user:      fs.String("etcd-user", env("OPENDTS_ETCD_USER", ""), "etcd user when etcd's authentication is on; the password comes from OPENDTS_ETCD_PASSWORD only (OPENDTS_ETCD_USER)"),
		leaseTTL:  fs.Duration("lease-ttl", ttl, "how long a dead node's jobs wait before another node takes them over (OPENDTS_LEASE_TTL)"),
		maxJobs:   fs.Int("max-jobs", int(envFloat("OPENDTS_MAX_JOBS", 0)), "jobs this node works on at once in cluster mode; 0 is unlimited (OPENDTS_MAX_JOBS)"),
	}
}

// config is the cluster configuration, or nil without etcd endpoints.
func (o clusterOptions) config(listen string) *app.ClusterConfig {
	endpoints := cluster.ParseEndpoints(*o.endpoints)
	if len(endpoints) == 0 {
		return nil
	}
	name := *o.nodeName
	if name == "" {
		host, _ := os.Hostname()
		name = host + "-" + listen
	}
	return &app.ClusterConfig{
		Etcd: cluster.EtcdConfig{
			Endpoints: endpoints,
			CAFile:    *o.caFile, CertFile: *o.certFile, KeyFile: *o.keyFile,
			Username: *o.user, Password: os.Getenv("OPENDTS_ETCD_PASSWORD"),
		},
		Prefix:   *o.prefix,
		NodeName: nodeNameSafe(name),
		Address:  listen,
		LeaseTTL: *o.leaseTTL,
		MaxJobs:  *o.maxJobs,
	}
}

// nodeNameSafe keeps a name usable as a key: no slashes or blanks.
func nodeNameSafe(s string) string {
	out := []rune(s)
	for i, r := range out {
		if r == '/' || r == ' ' || r == '\t' || r == '\n' {
			out[i] = '_'
		}
	}
	return string(out)
}
