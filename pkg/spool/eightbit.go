package spool

import "io"

// Mark8Bit returns r, marking env 8BITMIME as the message goes through
// when it turns out to hold 8-bit bytes and no body type was named. Create
// writes the envelope after the body, so the mark lands in the one qf
// write.
func Mark8Bit(r io.Reader, env *Envelope) io.Reader { return &eightBit{r: r, env: env} }

type eightBit struct {
	r   io.Reader
	env *Envelope
}

func (b *eightBit) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if b.env.BodyType == "" {
		for _, c := range p[:n] {
			if c >= 0x80 {
				b.env.BodyType = "8BITMIME"
				break
			}
		}
	}
	return n, err
}
