package policy

import (
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The field table must cover every Worker field under its JSON name, or CEL
// would silently not see a field.
func TestWorkerFieldsCoverStruct(t *testing.T) {
	typ := reflect.TypeOf(Worker{})
	require.Equal(t, typ.NumField(), len(workerFields))
	var w Worker
	v := reflect.ValueOf(&w).Elem()
	for i := 0; i < typ.NumField(); i++ {
		name := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
		require.Equal(t, name, workerFields[i].name)
		v.Field(i).SetString("value-" + name)
	}
	m := w.Fields()
	require.Len(t, m, typ.NumField())
	for _, name := range WorkerFieldNames() {
		require.Equal(t, "value-"+name, m[name])
		require.Equal(t, "value-"+name, w.field(name))
	}
	require.Empty(t, w.field("nope"))
	require.Len(t, Worker{}.Fields(), typ.NumField(), "empty fields are present, not missing")
}

func TestKinds(t *testing.T) {
	require.Equal(t, []string{"employee", "contractor", "service-account", "pipeline", "ai-agent"}, Kinds())
	for _, k := range Kinds() {
		require.True(t, IsKnownKind(k))
	}
	require.False(t, IsKnownKind("robot"))
	require.True(t, IsHumanKind(KindEmployee))
	require.True(t, IsHumanKind(KindContractor))
	require.False(t, IsHumanKind(KindPipeline))
	k := Kinds()
	k[0] = "mutated"
	require.Equal(t, "employee", Kinds()[0], "Kinds returns a copy")
}
