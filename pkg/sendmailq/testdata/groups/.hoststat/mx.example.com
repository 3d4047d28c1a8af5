V0
E111
SConnection refused
U1795670000
