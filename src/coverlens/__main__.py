from coverlens.cli import main

raise SystemExit(main())
