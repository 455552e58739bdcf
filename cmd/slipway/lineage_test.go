package main

import (
	"strings"
	"testing"

	"github.com/slipwayml/slipway/client"
)

// TestPrintLineage checks the tree against a graph with what the e2e test
// cannot easily build: siblings, a node reached twice and a deleted one.
func TestPrintLineage(t *testing.T) {
	ref := func(kind, id string) client.LineageRef { return client.LineageRef{Kind: kind, ID: id} }
	data := ref("data", "loans@v2")
	r1, r2 := ref("run", "aaaa"), ref("run", "bbbb")
	m1, m2, gone := ref("model", "risk/1"), ref("model", "risk/2"), ref("model", "old/1")
	model := func(r client.LineageRef) client.LineageNode {
		return client.LineageNode{LineageRef: r, Model: &client.LineageModelVersion{Status: "READY", Stage: "Production", Aliases: []string{"champion"}}}
	}
	g := &client.LineageGraph{
		Root: m2, Direction: "up", Depth: 3,
		Nodes: []client.LineageNode{
			model(m2),
			{LineageRef: r1, Run: &client.LineageRun{Status: "FINISHED", ExperimentID: "1", Params: []client.Param{{Key: "lr", Value: "0.1"}}}},
			{LineageRef: gone, Missing: true},
			model(m1),
			{LineageRef: data, Data: &client.DataVersion{FileCount: 2, TotalSize: 2048, Digest: strings.Repeat("ab", 32)}},
			{LineageRef: r2, Run: &client.LineageRun{Status: "FAILED", ExperimentID: "1"}},
		},
		Edges: []client.LineageEdge{
			{From: r1, To: m2, Relation: client.RelationRegisteredFrom},
			{From: gone, To: m2, Relation: client.RelationDerivedFrom},
			{From: m1, To: m2, Relation: client.RelationDerivedFrom},
			{From: data, To: r1, Relation: client.RelationConsumedBy},
			{From: r2, To: m1, Relation: client.RelationRegisteredFrom},
			{From: data, To: r2, Relation: client.RelationConsumedBy},
		},
	}
	var b strings.Builder
	if err := printLineage(&b, g); err != nil {
		t.Fatal(err)
	}
	want := `models:/risk/2  READY, stage Production, @champion
├─ registered from runs:/aaaa  FINISHED, experiment 1
│    params:  lr=0.1
│  └─ consumed data:loans@v2  2 files, 2.0 KiB, digest abababababab
├─ derived from models:/old/1 (deleted)
└─ derived from models:/risk/1  READY, stage Production, @champion
   └─ registered from runs:/bbbb  FAILED, experiment 1
      └─ consumed data:loans@v2 (see above)

1 data version behind models:/risk/2: data:loans@v2
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
