//go:build ignore

// Generates the Ent code of every bounded context: go run -mod=mod ./ent/entc.go (from the module root).
package main

import (
	"log"

	"entgo.io/ent/entc"
	"entgo.io/ent/entc/gen"
)

func main() {
	for _, name := range []string{"authdb", "tasksdb", "accountingdb", "analyticsdb"} {
		err := entc.Generate("./ent/"+name+"/schema", &gen.Config{
			Target:   "./ent/" + name,
			Package:  "github.com/uberpopug/ates/ent/" + name,
			Features: []gen.Feature{gen.FeatureExecQuery, gen.FeatureUpsert, gen.FeatureLock, gen.FeatureModifier},
		})
		if err != nil {
			log.Fatalf("generating %s: %v", name, err)
		}
	}
}
