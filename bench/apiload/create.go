package main

import (
	"context"
	"flag"
	"fmt"
	"slices"
	"time"
)

// create times CreateMigrateJob calls made one after another, each with its
// own target and database (so none is a duplicate).
func create(args []string) error {
	fs := flag.NewFlagSet("create", flag.ExitOnError)
	endpoint := fs.String("endpoint", "", "host:port of opendts serve")
	credFile := fs.String("credentials", "", "file of `SecretId SecretKey` lines")
	n := fs.Int("n", 50, "jobs to create")
	label := fs.String("label", "", "printed in front of the line")
	_ = fs.Parse(args)
	creds, err := readCredentials(*credFile)
	if err != nil {
		return err
	}
	c := newCaller(*endpoint)
	var lat []time.Duration
	stamp := time.Now().UnixNano()
	for i := range *n {
		body := fmt.Appendf(nil, `{"JobName":"create-%d-%d","MigrateOption":{"RunMode":1,"MigrateType":2},
"SrcDatabaseType":"mysql","SrcAccessType":"extranet","SrcInfo":{"Ip":"10.9.0.1","Port":3306,"User":"u","Password":"p"},
"DstDatabaseType":"mysql","DstAccessType":"extranet","DstInfo":{"Ip":"10.8.%d.%d","Port":3306,"User":"u","Password":"p","Region":"ap-guangzhou"},
"DatabaseInfo":"[{\"Database\":\"c%d_%d\"}]"}`, stamp, i, i/250, i%250, stamp, i)
		t0 := time.Now()
		code, data, err := c.call(context.Background(), creds[i%len(creds)], "CreateMigrateJob", body)
		if err != nil {
			return err
		}
		if code != "" {
			return fmt.Errorf("CreateMigrateJob: %s", data)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	fmt.Printf("%-8s CreateMigrateJob x%d one by one: p50 %s, p99 %s, max %s\n", *label, len(lat),
		ms(lat[len(lat)/2]), ms(lat[min(len(lat)-1, len(lat)*99/100)]), ms(lat[len(lat)-1]))
	return nil
}
