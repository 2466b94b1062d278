//go:build tools

// Package deps pins modules before code imports them.
package deps

import (
	_ "github.com/compose-spec/compose-go/v2/loader"
	_ "github.com/go-ldap/ldap/v3"
	_ "github.com/google/cel-go/cel"
	_ "github.com/google/uuid"
	_ "github.com/hashicorp/vault/api"
	_ "github.com/mozillazg/go-unidecode"
	_ "github.com/stretchr/testify/require"
	_ "go.temporal.io/api/enums/v1"
	_ "go.temporal.io/api/serviceerror"
	_ "go.temporal.io/api/workflowservice/v1"
	_ "go.temporal.io/sdk/activity"
	_ "go.temporal.io/sdk/client"
	_ "go.temporal.io/sdk/converter"
	_ "go.temporal.io/sdk/log"
	_ "go.temporal.io/sdk/temporal"
	_ "go.temporal.io/sdk/testsuite"
	_ "go.temporal.io/sdk/worker"
	_ "go.temporal.io/sdk/workflow"
	_ "golang.org/x/text/unicode/norm"
	_ "gopkg.in/yaml.v3"
	_ "modernc.org/sqlite"
)
