"""The Streamlit pages (UI glue): each maps widgets to one call into labeling/, models/ or store/."""
