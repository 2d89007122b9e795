package bridge

import "strconv"

// management answers a record with request id 0.
func (c *conn) management(h header, content []byte) bool {
	var out []byte
	if h.Type == typeGetValues {
		out = c.getValues(content)
	} else {
		c.log.Debug().Uint8("type", h.Type).Msg("unknown management record; answered UNKNOWN_TYPE")
		var b [16]byte
		putHeader(b[:], typeUnknownType, 0, 8)
		b[8] = h.Type
		out = b[:]
	}
	return c.w.writeRaw(out) == nil
}

// getValues builds the GET_VALUES_RESULT for the known variables asked.
func (c *conn) getValues(content []byte) []byte {
	ps, err := decodePairs(string(content), nil)
	if err != nil {
		c.log.Warn().Err(err).Msg("malformed FCGI_GET_VALUES; answering what was readable")
	}
	body := make([]byte, 0, 64)
	var seen [3]bool // each variable once, so the answer fits one record
	for _, p := range ps {
		var i, v int
		switch p.Name {
		case "FCGI_MAX_CONNS":
			i, v = 0, c.srv.maxConns()
		case "FCGI_MAX_REQS":
			i, v = 1, c.srv.maxReqs()
		case "FCGI_MPXS_CONNS":
			i, v = 2, 1
		default:
			continue
		}
		if !seen[i] {
			seen[i] = true
			body = appendPair(body, p.Name, strconv.Itoa(v))
		}
	}
	out := make([]byte, headerLen, headerLen+len(body)+8)
	pad := putHeader(out, typeGetValuesResult, 0, len(body))
	out = append(out, body...)
	return append(out, zeroPad[:pad]...)
}
