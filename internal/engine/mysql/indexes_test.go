package mysql

import (
	"reflect"
	"testing"
)

func TestSplitSecondaryIndexes(t *testing.T) {
	fulltext := "CREATE TABLE `f` (\n  `id` int NOT NULL,\n  `t` text,\n  PRIMARY KEY (`id`),\n  FULLTEXT KEY `t` (`t`)\n) ENGINE=InnoDB"
	sysbench := "CREATE TABLE `sbtest1` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n  `c` char(120) NOT NULL DEFAULT '',\n  PRIMARY KEY (`id`),\n  KEY `k_1` (`k`),\n  UNIQUE KEY `c` (`c`,`k`)\n) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4"
	tests := []struct {
		name, create, table string
		adds                []string
	}{
		{"secondary and unique keys move", sysbench,
			"CREATE TABLE `sbtest1` (\n  `id` int(11) NOT NULL AUTO_INCREMENT,\n  `k` int(11) NOT NULL DEFAULT 0,\n  `c` char(120) NOT NULL DEFAULT '',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB AUTO_INCREMENT=5 DEFAULT CHARSET=utf8mb4",
			[]string{"ADD KEY `k_1` (`k`)", "ADD UNIQUE KEY `c` (`c`,`k`)"}},
		{"foreign keys keep everything",
			"CREATE TABLE `c` (\n  `id` int NOT NULL,\n  `p` int,\n  PRIMARY KEY (`id`),\n  KEY `p` (`p`),\n  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `p` (`id`)\n) ENGINE=InnoDB", "", nil},
		{"auto increment led by a secondary key",
			"CREATE TABLE `a` (\n  `g` int NOT NULL,\n  `id` int NOT NULL AUTO_INCREMENT,\n  PRIMARY KEY (`g`,`id`),\n  KEY `id` (`id`)\n) ENGINE=InnoDB", "", nil},
		{"fulltext stays", fulltext, "", nil},
		{"no secondary index",
			"CREATE TABLE `n` (\n  `a` int DEFAULT NULL\n) ENGINE=InnoDB", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table, adds := splitSecondaryIndexes(tt.create)
			want := tt.table
			if want == "" {
				want = tt.create
			}
			if table != want || !reflect.DeepEqual(adds, tt.adds) {
				t.Errorf("got\n%s\n%q\nwant\n%s\n%q", table, adds, want, tt.adds)
			}
		})
	}
}

func TestStripIdentified(t *testing.T) {
	tests := map[string]string{
		"GRANT USAGE ON *.* TO `a`@`%` IDENTIFIED BY PASSWORD '*ABC'":                          "GRANT USAGE ON *.* TO `a`@`%`",
		"GRANT ALL PRIVILEGES ON *.* TO `r`@`h` IDENTIFIED BY PASSWORD '*X' WITH GRANT OPTION": "GRANT ALL PRIVILEGES ON *.* TO `r`@`h` WITH GRANT OPTION",
		"GRANT USAGE ON *.* TO `v`@`%` IDENTIFIED VIA ed25519 USING 'hash'":                    "GRANT USAGE ON *.* TO `v`@`%`",
		"GRANT SELECT ON `db`.* TO `a`@`%`":                                                    "GRANT SELECT ON `db`.* TO `a`@`%`",
	}
	for in, want := range tests {
		if got := stripIdentified(in); got != want {
			t.Errorf("stripIdentified(%q) = %q, want %q", in, got, want)
		}
	}
}
