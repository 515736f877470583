extension DashboardAssets {
    /// The dashboard's style sheet.
    static let style = #"""
    :root { font-family: system-ui, sans-serif; font-size: 14px; color: #1a202c; background: #f7f7f5; }
    body { margin: 0; }
    header { display: flex; align-items: center; gap: 12px; padding: 10px 20px; background: #1a202c; color: #f7f7f5; }
    header h1 { font-size: 18px; margin: 0; }
    .spacer { flex: 1; }
    .pill { padding: 2px 8px; border-radius: 10px; background: #4a5568; font-size: 12px; }
    .pill.good { background: #2f855a; }
    .pill.bad { background: #c53030; }
    main { padding: 12px 20px 40px; }
    .tiles { display: flex; flex-wrap: wrap; gap: 10px; }
    .tile { background: #fff; border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px 14px; min-width: 110px; }
    .tile .label { display: block; color: #718096; font-size: 12px; }
    .tile .value { font-size: 22px; font-variant-numeric: tabular-nums; }
    .charts { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 12px; }
    figure { margin: 0; background: #fff; border: 1px solid #e2e8f0; border-radius: 6px; padding: 8px; }
    figcaption { color: #4a5568; font-size: 12px; margin-bottom: 4px; }
    h2 { font-size: 15px; margin: 20px 0 6px; }
    table { border-collapse: collapse; background: #fff; width: 100%; font-variant-numeric: tabular-nums; }
    th, td { border-bottom: 1px solid #edf2f7; padding: 4px 8px; text-align: left; }
    th { color: #4a5568; font-weight: 600; font-size: 12px; }
    td.empty { color: #a0aec0; }
    tr.paused td.name { color: #b7791f; font-weight: 600; }
    tr.bad td { color: #c53030; }
    button { font: inherit; font-size: 12px; padding: 2px 8px; margin-right: 4px; border: 1px solid #a0aec0; border-radius: 4px; background: #fff; cursor: pointer; }
    button.danger { border-color: #c53030; color: #c53030; }
    button:disabled { opacity: 0.4; cursor: default; }
    header button { background: #2d3748; color: #f7f7f5; border-color: #4a5568; }
    #message { min-height: 1.2em; margin: 8px 0 0; }
    #message.good { color: #2f855a; }
    #message.bad { color: #c53030; }
    footer { margin-top: 20px; color: #718096; font-size: 12px; }
    body.sign-in { display: flex; justify-content: center; padding-top: 12vh; }
    body.sign-in form { background: #fff; border: 1px solid #e2e8f0; border-radius: 6px; padding: 20px 28px; width: 360px; }
    body.sign-in input { display: block; width: 100%; box-sizing: border-box; margin: 4px 0 12px; padding: 6px; font: inherit; }
    .problem { color: #c53030; }
    """#
}
