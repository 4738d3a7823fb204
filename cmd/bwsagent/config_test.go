package main

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/bwsagent/bwsagent/agent"
	"github.com/bwsagent/bwsagent/agent/config"
	"github.com/bwsagent/bwsagent/liveness"
)

// The configuration's liveness section mirrors liveness.Config (the
// config package cannot import liveness, which needs OpenCV): its defaults
// are liveness.DefaultConfig and its validation accepts exactly what
// liveness.Config.Validate accepts, naming the key where Validate names the
// Go field. That the fields match is checked by the compiler
// (agent.LivenessConfig is a type conversion).
func TestLivenessConfigMirrorsLiveness(t *testing.T) {
	if got, want := agent.LivenessConfig(config.Default()), liveness.DefaultConfig(); got != want {
		t.Errorf("config.Default().Liveness differs from liveness.DefaultConfig():\n got %+v\nwant %+v", got, want)
	}

	// Every value either side of every bound Validate has, for one field
	// at a time on top of the defaults (which also reaches the
	// minChallengeDeg <= maxStepDeg rule).
	probes := []float64{math.NaN(), math.Inf(-1), math.Inf(1), -1e9, 1e9}
	for _, b := range []float64{-1, 0, 0.5, 1, 2, 3, 4, 5, 14, 40, 45, 50, 60, 89, 90, 91, 100, 180, 1000, 10000} {
		probes = append(probes, b, math.Nextafter(b, math.Inf(-1)), math.Nextafter(b, math.Inf(1)))
	}
	ct := reflect.TypeOf(config.Liveness{})
	for i := range ct.NumField() {
		f := ct.Field(i)
		key := "liveness." + strings.Split(f.Tag.Get("yaml"), ",")[0]
		for _, v := range probes {
			c := config.Default()
			reflect.ValueOf(&c.Liveness).Elem().Field(i).SetFloat(v)
			cfgErr, liveErr := c.Validate(), agent.LivenessConfig(c).Validate()
			if (cfgErr == nil) != (liveErr == nil) {
				t.Errorf("%s = %g: config says %v, liveness says %v", key, v, cfgErr, liveErr)
				continue
			}
			if cfgErr != nil && !strings.Contains(cfgErr.Error(), "'"+key+"'") {
				t.Errorf("%s = %g: error %q does not name the key", key, v, cfgErr)
			}
		}
	}
}
