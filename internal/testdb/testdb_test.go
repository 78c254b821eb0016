package testdb_test

import (
	"database/sql"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func TestSharedPair(t *testing.T) {
	src, dst := testdb.Shared(t)
	if src.Port == dst.Port || src.ServerID == dst.ServerID {
		t.Fatalf("source and target share port or server_id: %+v %+v", src, dst)
	}
	for _, s := range []*testdb.Server{src, dst} {
		var logBin, format, image string
		var serverID int
		err := s.DB(t).QueryRow("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@server_id").
			Scan(&logBin, &format, &image, &serverID)
		if err != nil {
			t.Fatal(err)
		}
		if logBin != "1" || format != "ROW" || image != "FULL" || serverID != s.ServerID {
			t.Errorf("%s:%d: log_bin=%s binlog_format=%s binlog_row_image=%s server_id=%d",
				s.Host, s.Port, logBin, format, image, serverID)
		}
	}
	again, _ := testdb.Shared(t)
	if again != src {
		t.Error("Shared started a second pair")
	}
}

func TestNewDatabaseAndUser(t *testing.T) {
	src, _ := testdb.Shared(t)
	db := src.NewDatabase(t, "Self-Test")
	src.Exec(t, "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY)")
	user := src.NewUser(t, "selftest", "pa'ss\\word", "SELECT ON `"+db+"`.*")

	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net = user, "pa'ss\\word", "tcp"
	cfg.Addr = fmt.Sprintf("%s:%d", src.Host, src.Port)
	conn, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var n int
	if err := conn.QueryRow("SELECT COUNT(*) FROM `" + db + "`.t").Scan(&n); err != nil {
		t.Fatalf("new user cannot read its database: %v", err)
	}
}
