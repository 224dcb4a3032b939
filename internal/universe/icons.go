package universe

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math"
)

// Icons are the package's icons (resource.json images), drawn here so that
// the repository holds no binary files: a Consul-pink "C" ring around a
// dot, with three dots in the ring's opening, on a transparent
// background. Sizes are the ones Universe asks for.
func Icons() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, size := range map[string]int{"icon-small.png": 48, "icon-medium.png": 128, "icon-large.png": 256} {
		var b bytes.Buffer
		if err := png.Encode(&b, drawIcon(size)); err != nil {
			return nil, err
		}
		out[name] = b.Bytes()
	}
	return out, nil
}

func drawIcon(size int) image.Image {
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	pink := color.NRGBA{R: 0xE0, G: 0x38, B: 0x75}
	const ss = 4 // supersampling per axis, for smooth edges
	for y := 0; y < size; y++ {
		for x := 0; x < size; x++ {
			hits := 0
			for sy := 0; sy < ss; sy++ {
				for sx := 0; sx < ss; sx++ {
					// Coordinates in [-1, 1], y up.
					px := (float64(x)+(float64(sx)+0.5)/ss)/float64(size)*2 - 1
					py := 1 - (float64(y)+(float64(sy)+0.5)/ss)/float64(size)*2
					if inIcon(px, py) {
						hits++
					}
				}
			}
			if hits > 0 {
				c := pink
				c.A = uint8(255 * hits / (ss * ss))
				img.SetNRGBA(x, y, c)
			}
		}
	}
	return img
}

func inIcon(x, y float64) bool {
	r := math.Hypot(x, y)
	angle := math.Abs(math.Atan2(y, x)) // 0 points right, into the opening
	switch {
	case r <= 0.22: // centre dot
		return true
	case r >= 0.55 && r <= 0.92 && angle > 0.62: // the C
		return true
	}
	// Three dots in the opening, on the ring's middle circle.
	for _, a := range []float64{-0.38, 0, 0.38} {
		cx, cy := 0.735*math.Cos(a), 0.735*math.Sin(a)
		if math.Hypot(x-cx, y-cy) <= 0.1 {
			return true
		}
	}
	return false
}
