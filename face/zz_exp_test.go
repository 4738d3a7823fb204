package face

import (
	"context"
	"encoding/json"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"gocv.io/x/gocv"

	"github.com/bwsagent/bwsagent/internal/testenv"
)

func TestZZExpPAD(t *testing.T) {
	dir := os.Getenv("EXP_DIR")
	if dir == "" {
		t.Skip()
	}
	e, err := New(Config{ModelsDir: testenv.ModelsDir(), Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	scales := []float64{1.5, 2.0, 2.7, 3.5, 4.5}
	cases, _ := os.ReadDir(dir)
	out, _ := os.Create(os.Getenv("EXP_OUT"))
	defer out.Close()
	for _, c := range cases {
		var meta struct{ Label, Attack string }
		b, err := os.ReadFile(filepath.Join(dir, c.Name(), "meta.json"))
		if err != nil {
			continue
		}
		json.Unmarshal(b, &meta)
		if meta.Label != "bona-fide" && meta.Attack != "screen" && meta.Attack != "screen-real" && meta.Attack != "print-real" {
			continue
		}
		imgs, _ := filepath.Glob(filepath.Join(dir, c.Name(), "*.jpg"))
		sort.Strings(imgs)
		for _, p := range imgs {
			img := gocv.IMRead(p, gocv.IMReadColor)
			fs, err := e.Detect(context.Background(), img)
			if err != nil || len(fs) == 0 {
				img.Close()
				continue
			}
			row := map[string]any{"case": c.Name(), "attack": meta.Attack, "label": meta.Label, "img": filepath.Base(p)}
			e.with(context.Background(), func(w *worker) error {
				for _, s := range scales {
					probs := w.padProbs(img, fs[0].Box, s)
					row[fmt.Sprintf("s%.1f", s)] = probs
				}
				return nil
			})
			img.Close()
			j, _ := json.Marshal(row)
			fmt.Fprintln(out, string(j))
		}
	}
}

func (w *worker) padProbs(img gocv.Mat, box Rect, scale float64) []float64 {
	r := padCrop(box, img.Cols(), img.Rows(), scale).Int().Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
	region := img.Region(r)
	defer region.Close()
	blob := gocv.BlobFromImage(region, 1, image.Pt(padSize, padSize), gocv.NewScalar(0, 0, 0, 0), false, false)
	defer blob.Close()
	w.liveness.SetInput(blob, "input")
	o := w.liveness.Forward("output")
	defer o.Close()
	v, _ := o.DataPtrFloat32()
	return softmax(v)
}
