package evaluate

import (
	"fmt"
	"os"
	"testing"
)

func TestZZFrameBits(t *testing.T) {
	p := os.Getenv("EXP_GOB")
	if p == "" {
		t.Skip()
	}
	rs, err := LoadSamples(p)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := os.Create(os.Getenv("EXP_OUT"))
	defer out.Close()
	for _, r := range rs {
		fmt.Fprintf(out, "%s\t%v\t%s\t%v", r.Name, r.BonaFide, r.Attack, r.Decision.Live)
		for _, s := range r.Samples {
			if s.Usable() {
				fmt.Fprintf(out, "\t%d", s.Frame)
			}
		}
		fmt.Fprintln(out)
	}
}
