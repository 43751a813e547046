"""Adapters to other agent frameworks, each behind its own extra. They may import that framework
and tether; nothing in `tether.runtime` or `tether.foundation` imports them, and they import no
database driver: storage goes through the interfaces."""
