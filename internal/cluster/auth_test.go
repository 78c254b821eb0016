package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/testetcd"
)

// With etcd's authentication on, a node connects with the user and
// password it is given (-etcd-user, OPENDTS_ETCD_PASSWORD), and a wrong
// password is refused at start with an error that does not repeat it.
func TestConnectWithEtcdAuthentication(t *testing.T) {
	etcd := testetcd.Start(t, 1)
	ctx := context.Background()
	admin := etcd.Client(t)
	for _, step := range []func() error{
		func() error { _, err := admin.UserAdd(ctx, "root", "root-secret-1"); return err },
		func() error { _, err := admin.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := admin.UserAdd(ctx, "opendts", "node-secret-2"); return err },
		func() error { _, err := admin.RoleAdd(ctx, "opendts"); return err },
		func() error {
			_, err := admin.RoleGrantPermission(ctx, "opendts", "/opendts/", clientv3.GetPrefixRangeEnd("/opendts/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := admin.UserGrantRole(ctx, "opendts", "opendts"); return err },
		// A user without a role on opendts's prefix.
		func() error { _, err := admin.UserAdd(ctx, "stranger", "stranger-secret-4"); return err },
		func() error { _, err := admin.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}

	cfg := EtcdConfig{Endpoints: etcd.Endpoints(), Username: "opendts", Password: "wrong-password-3", DialTimeout: 3 * time.Second, Prefix: "/opendts/"}
	if c, err := Connect(ctx, cfg); err == nil {
		c.Close()
		t.Fatal("a wrong etcd password was accepted")
	} else if strings.Contains(err.Error(), "wrong-password-3") {
		t.Errorf("the error repeats the password: %v", err)
	} else {
		t.Logf("wrong password: %v", err)
	}

	stranger := cfg
	stranger.Username, stranger.Password = "stranger", "stranger-secret-4"
	if c, err := Connect(ctx, stranger); err == nil {
		c.Close()
		t.Fatal("a user without a role on the prefix was let in")
	} else if !strings.Contains(err.Error(), "needs read and write on the keys under /opendts/") {
		t.Errorf("a user without a role on the prefix: %v", err)
	}

	cfg.Password = "node-secret-2"
	c, err := Connect(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := OpenStore(ctx, c, NewKeys("/opendts/"), testBox(t, key1))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j := sampleJob("dts-auth0001")
	if err := st.CreateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if list, total, err := st.ListJobs(ctx, jobs.Query{}); err != nil || total != 1 || list[0].ID != j.ID {
		t.Fatalf("list under authentication: %v %d %v", list, total, err)
	}
	n, err := Join(ctx, NodeConfig{Client: c, Keys: NewKeys("/opendts/"), Name: "authed", LeaseTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
}
