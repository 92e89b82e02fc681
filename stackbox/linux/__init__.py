"""The only code that touches the kernel or spawns host daemons (DESIGN §2, §9.6).

Flat ``ensure_*``/``remove_*`` functions that tolerate what already exists or is
already gone, so that reconcilers can run them again and again. Blocking: agents
call them from worker threads.
"""
