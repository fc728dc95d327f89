from okrflow.cli import main

raise SystemExit(main())
