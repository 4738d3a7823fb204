package rates

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Curve is one labelled DET curve.
type Curve struct {
	Label  string
	Scores Scores
}

// PlotDET writes a DET plot (log-scaled error rates) as a PNG. xName and
// yName label the axes, e.g. "FMR"/"FNMR" or "APCER"/"BPCER".
func PlotDET(path, title, xName, yName string, curves []Curve) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xName + " (log)"
	p.Y.Label.Text = yName + " (log)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.LogTicks{Prec: -1}, plot.LogTicks{Prec: -1}
	p.Add(plotter.NewGrid())
	floor := 1.0
	for _, c := range curves {
		floor = math.Min(floor, 1/float64(max(1, len(c.Scores.Impostor))))
		floor = math.Min(floor, 1/float64(max(1, len(c.Scores.Genuine))))
	}
	floor /= 2 // zero rates are drawn on this floor line, below every real rate
	palette := []color.Color{color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 255}, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 255},
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 255}, color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 255}, color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 255}}
	for i, c := range curves {
		det := c.Scores.DET()
		if len(det) == 0 {
			continue
		}
		xy := make(plotter.XYs, len(det))
		for j, pt := range det {
			xy[j].X, xy[j].Y = math.Max(pt.FMR, floor), math.Max(pt.FNMR, floor)
		}
		line, err := plotter.NewLine(xy)
		if err != nil {
			return fmt.Errorf("DET curve %q: %w", c.Label, err)
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		p.Add(line)
		eer, _ := c.Scores.EER()
		p.Legend.Add(fmt.Sprintf("%s (EER %.2f%%)", c.Label, 100*eer), line)
	}
	diag, err := plotter.NewLine(plotter.XYs{{X: floor, Y: floor}, {X: 1, Y: 1}})
	if err == nil {
		diag.Dashes = []vg.Length{vg.Points(3), vg.Points(3)}
		diag.Color = color.Gray{Y: 150}
		p.Add(diag)
	}
	p.X.Min, p.Y.Min, p.X.Max, p.Y.Max = floor, floor, 1, 1
	p.Legend.Top = true
	if err := p.Save(6*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save DET plot: %w", err)
	}
	return nil
}
