// ModemSim: a host-only GSM/LTE module simulator on a pseudo-terminal (issue 3). Filled in by its own files.
