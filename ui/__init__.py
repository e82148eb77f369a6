"""Everything Streamlit.

`resources` caches the process-wide parts (`st.cache_resource`: the service, the job
dispatcher, the share-link limiter, recomputed layers; the neuron view's HTML); `session` and
`auth` know the visitor (`current_viewer`, `current_actor`, the login gate); `actions.Flash`
runs one service call from a button and shows its outcome at the top of the next run;
`run_page` opens the screens that run models. Then the views and panels of each screen
(`analysis_view`, the `attention_view` component, `bertviz_html`, `plots`, `save_panel`,
`saved_view`, `history_view`, `share_panel`, `compare_view`, `comparison_history`,
`batch_view`, `atlas_view`, `models_view`, `model_analytics_view`, `analytics_plots`,
`preset_panel`) and `text` (user text escaped for HTML and Markdown). It imports no `db`, no
SQLAlchemy and no transaction: it calls services and draws what they return. The scripts in
`pages/` are thin and call into this package and `core.service`.
"""
