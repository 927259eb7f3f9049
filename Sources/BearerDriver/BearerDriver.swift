// BearerDriver: radio bytes in, lines, URCs, SMS PDUs and socket payloads out (see issue 3).
// It never imports HandsetCore; the firmware entry wires the two together.
