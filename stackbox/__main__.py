from stackbox.cli import main

raise SystemExit(main())
